document.querySelectorAll('input.filter').forEach(function(box){
  box.hidden=false;
  var list=box.nextElementSibling;
  box.addEventListener('input',function(){
    var q=box.value.toLowerCase();
    list.querySelectorAll('details.conn').forEach(function(d){
      var t=d.querySelector('summary').textContent.toLowerCase();
      d.style.display=(!q||t.indexOf(q)>=0)?'':'none';
    });
  });
});
